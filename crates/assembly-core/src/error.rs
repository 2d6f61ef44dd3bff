//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed source error, kept for the `source()` chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, grouped by what the caller can do about it.
///
/// Messages are lowercase without a trailing period and name the file or field involved.
/// Underlying causes are kept in the [`std::error::Error::source`] chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read, created or renamed. Check the path and permissions.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"create"`, `"rename"`, …).
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The input is in a container or codec this library cannot decode (the name says which).
    #[error("{path}: unsupported format: {detail}")]
    UnsupportedFormat {
        /// The input (or `<memory>` for bytes).
        path: PathBuf,
        /// Which container or codec, and why.
        detail: String,
    },

    /// The input is damaged or not audio at all.
    #[error("{path}: cannot decode: {detail}")]
    Decode {
        /// The input (or `<memory>` for bytes).
        path: PathBuf,
        /// What went wrong.
        detail: String,
        /// The decoder's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The input (or a requested output) is larger than the configured [`crate::Limits`] allow.
    #[error("{path}: {what} is {value}, over the limit of {limit}")]
    LimitExceeded {
        /// The input concerned.
        path: PathBuf,
        /// Which limit (`"duration_s"`, `"channels"`, `"sample_rate"`, `"file_bytes"`, …).
        what: &'static str,
        /// The value found.
        value: String,
        /// The configured limit.
        limit: String,
    },

    /// A parameter or field has a value that cannot work (wrong unit, out of range, empty, …).
    #[error("invalid {field}: {detail}")]
    InvalidInput {
        /// The field or parameter, as a path (`"output.bitrate_kbps"`).
        field: String,
        /// Why it is invalid.
        detail: String,
    },

    /// A spec (or options object) failed validation. Every problem is listed, each with the
    /// JSON path of the field at fault (`"output.bitrate_kbps"`, `"template.segments[2].asset"`).
    #[error("invalid spec: {}", SpecProblem::join(problems))]
    InvalidSpec {
        /// Every problem found, in document order.
        problems: Vec<SpecProblem>,
    },

    /// Writing an output failed in the encoder (not an I/O error).
    #[error("{path}: cannot encode: {detail}")]
    Encode {
        /// The output being written.
        path: PathBuf,
        /// What went wrong.
        detail: String,
        /// The encoder's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The run was cancelled through its [`crate::CancelToken`]. No output was left behind.
    #[error("cancelled")]
    Cancelled,

    /// A bug: an internal invariant failed or a panic was caught. Please report it.
    #[error("internal error: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

/// One problem found while validating a spec: where, and what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpecProblem {
    /// JSON path of the field at fault, e.g. `"template.segments[2].asset"`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl SpecProblem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }

    fn join(problems: &[SpecProblem]) -> String {
        problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; ")
    }
}

impl Error {
    /// An [`Error::InvalidInput`] for `field`.
    pub fn invalid_input(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidInput { field: field.into(), detail: detail.into() }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io { op, path: path.as_ref().to_path_buf(), source }
    }

    /// An [`Error::Decode`] without a source.
    pub fn decode(path: impl AsRef<Path>, detail: impl Into<String>) -> Self {
        Self::Decode { path: path.as_ref().to_path_buf(), detail: detail.into(), source: None }
    }

    /// An [`Error::Encode`] without a source.
    pub fn encode(path: impl AsRef<Path>, detail: impl Into<String>) -> Self {
        Self::Encode { path: path.as_ref().to_path_buf(), detail: detail.into(), source: None }
    }

    /// An [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal { message: message.into() }
    }

    /// True for [`Error::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }
}

/// The message of a caught panic (`&str` or `String` payloads), for the errors that replace
/// panics at the library's boundaries.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_the_file_and_chain_the_source() {
        let e = Error::io(
            "open",
            "/x/episode.wav",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        );
        assert_eq!(e.to_string(), "open /x/episode.wav: no such file");
        assert!(e.source().is_some());
        let e = Error::invalid_input("output.bitrate_kbps", "must be 32..=320, got 7");
        assert_eq!(e.to_string(), "invalid output.bitrate_kbps: must be 32..=320, got 7");
    }
}
