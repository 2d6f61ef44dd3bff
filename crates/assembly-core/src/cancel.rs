//! Cooperative cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// A cheap, cloneable cancellation flag. Clones share the flag; any clone can cancel.
///
/// Long-running work checks it per packet or block and returns [`Error::Cancelled`].
///
/// # Examples
///
/// ```
/// use assembly_core::CancelToken;
///
/// let token = CancelToken::new();
/// let other = token.clone();
/// assert!(token.check().is_ok());
/// other.cancel();
/// assert!(token.is_cancelled());
/// assert!(token.check().unwrap_err().is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder of this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once [`cancel`](Self::cancel) was called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Cancelled)` once cancelled, else `Ok(())`.
    ///
    /// # Errors
    ///
    /// [`Error::Cancelled`] when the token was cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
    }
}
