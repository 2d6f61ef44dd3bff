//! JSON plumbing shared by the JSON adapters: typed field access with field-path errors, the
//! original document kept for write-back, and the time fields found in it.

use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// The unit a provider writes its times in. Declared per adapter (or per key), never guessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// `f64` seconds.
    Seconds,
    /// Milliseconds (integers when written back).
    Millis,
}

impl Unit {
    /// Converts a raw value in this unit to seconds.
    pub(crate) fn to_seconds(self, v: f64) -> f64 {
        match self {
            Unit::Seconds => v,
            Unit::Millis => v / 1000.0,
        }
    }

    /// Converts seconds to a JSON number in this unit (µs-rounded seconds or whole ms).
    pub(crate) fn to_json(self, seconds: f64) -> Value {
        match self {
            Unit::Seconds => {
                let v = (seconds * 1e6).round() / 1e6;
                Number::from_f64(v).map_or(Value::Null, Value::Number)
            }
            Unit::Millis => {
                let ms = (seconds * 1000.0).round();
                if (0.0..9.0e15).contains(&ms) { Value::from(ms as u64) } else { Value::Null }
            }
        }
    }
}

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Renders a path as `segments[2].words[3]` under `root`, for error messages.
pub(crate) fn path_string(root: &str, path: &[Step]) -> String {
    let mut s = root.to_string();
    for step in path {
        match step {
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

pub(crate) fn get<'a>(mut v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    for step in path {
        v = match step {
            Step::Key(k) => v.as_object()?.get(k)?,
            Step::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

pub(crate) fn get_mut<'a>(mut v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        v = match step {
            Step::Key(k) => v.as_object_mut()?.get_mut(k)?,
            Step::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(v)
}

/// Parses `text` as JSON, naming the transcript in the error.
pub(crate) fn parse_doc(text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::invalid_input("transcript", format!("not valid JSON: {e}")))
}

/// Reads an optional time field: `Ok(None)` if absent or null, an error naming the field if it
/// is not a finite number.
pub(crate) fn opt_time(
    obj: &Map<String, Value>,
    key: &str,
    unit: Unit,
    field: &dyn Fn() -> String,
) -> Result<Option<f64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(unit.to_seconds(v))),
            _ => Err(Error::invalid_input(format!("{}.{key}", field()), "not a finite number")),
        },
        Some(other) => Err(Error::invalid_input(
            format!("{}.{key}", field()),
            format!("expected a number, found {}", kind(other)),
        )),
    }
}

/// Reads an optional string field (`Ok(None)` if absent or null). Numbers are accepted and
/// rendered as text (some providers emit numeric speaker labels).
pub(crate) fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    field: &dyn Fn() -> String,
) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(Error::invalid_input(
            format!("{}.{key}", field()),
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

/// Reads an optional confidence in `[0, 1]` (`Ok(None)` if absent or null).
pub(crate) fn opt_confidence(
    obj: &Map<String, Value>,
    key: &str,
    field: &dyn Fn() -> String,
) -> Result<Option<f32>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v.clamp(0.0, 1.0) as f32)),
            _ => Err(Error::invalid_input(format!("{}.{key}", field()), "not a finite number")),
        },
        Some(other) => Err(Error::invalid_input(
            format!("{}.{key}", field()),
            format!("expected a number, found {}", kind(other)),
        )),
    }
}

/// The object at `v`, or an error naming `field`.
pub(crate) fn as_object<'a>(
    v: &'a Value,
    field: &dyn Fn() -> String,
) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        Error::invalid_input(field(), format!("expected an object, found {}", kind(v)))
    })
}

/// The array at `v`, or an error naming `field`.
pub(crate) fn as_array<'a>(v: &'a Value, field: &dyn Fn() -> String) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| {
        Error::invalid_input(field(), format!("expected an array, found {}", kind(v)))
    })
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where a primary word lives in the original document.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WordLoc {
    /// Index into [`Doc::arrays`].
    pub array: usize,
    /// Index of the word object in that array.
    pub index: usize,
    /// Keys and unit its times are written with.
    pub keys: TimeKeys,
}

/// The start/end keys and their unit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TimeKeys {
    pub start: &'static str,
    pub end: &'static str,
    pub unit: Unit,
}

/// A secondary word-like object (e.g. a copy of a word inside an utterance): re-timed like a
/// word and removed when its word would be.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Span {
    pub array: usize,
    pub index: usize,
    pub keys: TimeKeys,
    pub start_s: f64,
    pub end_s: f64,
    pub kept: bool,
}

/// A single time field elsewhere in the document (segment bounds, durations): mapped as a point.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Point {
    pub path: Vec<Step>,
    pub key: String,
    pub unit: Unit,
    pub value_s: f64,
}

/// The original JSON document and everything in it that carries time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Doc {
    pub value: Value,
    /// Paths of the arrays holding primary words or spans.
    pub arrays: Vec<Vec<Step>>,
    pub spans: Vec<Span>,
    pub points: Vec<Point>,
}

impl Doc {
    pub(crate) fn new(value: Value) -> Self {
        Self { value, arrays: Vec::new(), spans: Vec::new(), points: Vec::new() }
    }

    /// Registers an array path, returning its index.
    pub(crate) fn array_id(&mut self, path: Vec<Step>) -> usize {
        if let Some(i) = self.arrays.iter().position(|p| *p == path) {
            return i;
        }
        self.arrays.push(path);
        self.arrays.len() - 1
    }

    /// Walks the document and records every other time field: objects in arrays named in
    /// `span_arrays` that carry both a start and an end become [`Span`]s, any other numeric
    /// field named in `keys` becomes a [`Point`]. Paths listed in `skip` (the primary word
    /// arrays) are not entered.
    pub(crate) fn collect_times(
        &mut self,
        keys: &[(&str, Unit)],
        span_keys: &[TimeKeys],
        span_arrays: &[&str],
        skip: &[Vec<Step>],
    ) {
        let mut path = Vec::new();
        let value = std::mem::take(&mut self.value);
        self.walk(&value, &mut path, keys, span_keys, span_arrays, skip);
        self.value = value;
    }

    fn walk(
        &mut self,
        v: &Value,
        path: &mut Vec<Step>,
        keys: &[(&str, Unit)],
        span_keys: &[TimeKeys],
        span_arrays: &[&str],
        skip: &[Vec<Step>],
    ) {
        if skip.iter().any(|p| p == path) {
            return;
        }
        match v {
            Value::Object(obj) => {
                let in_span_array = matches!(
                    (path.len().checked_sub(2).map(|i| &path[i]), path.last()),
                    (Some(Step::Key(k)), Some(Step::Index(_))) if span_arrays.contains(&k.as_str())
                );
                let mut as_span = false;
                if in_span_array {
                    for tk in span_keys {
                        let s = obj.get(tk.start).and_then(Value::as_f64);
                        let e = obj.get(tk.end).and_then(Value::as_f64);
                        if let (Some(s), Some(e)) = (s, e)
                            && s.is_finite()
                            && e.is_finite()
                            && let Some(Step::Index(index)) = path.last().cloned()
                        {
                            let array = self.array_id(path[..path.len() - 1].to_vec());
                            self.spans.push(Span {
                                array,
                                index,
                                keys: tk.clone(),
                                start_s: tk.unit.to_seconds(s),
                                end_s: tk.unit.to_seconds(e),
                                kept: true,
                            });
                            as_span = true;
                            break;
                        }
                    }
                }
                for (k, child) in obj {
                    if !as_span
                        && let Some(&(_, unit)) = keys.iter().find(|(name, _)| name == k)
                        && let Some(x) = child.as_f64()
                        && x.is_finite()
                    {
                        self.points.push(Point {
                            path: path.clone(),
                            key: k.clone(),
                            unit,
                            value_s: unit.to_seconds(x),
                        });
                    }
                    if child.is_object() || child.is_array() {
                        path.push(Step::Key(k.clone()));
                        self.walk(child, path, keys, span_keys, span_arrays, skip);
                        path.pop();
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    if child.is_object() || child.is_array() {
                        path.push(Step::Index(i));
                        self.walk(child, path, keys, span_keys, span_arrays, skip);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// The document with primary words replaced by `words` (kept entries, new times), spans
    /// and points re-timed, and dropped entries removed. `primary` lists the arrays holding
    /// primary words: their entries not in `words` are dropped.
    pub(crate) fn render(&self, words: &[(WordLoc, f64, f64)], primary: &[usize]) -> Value {
        #[derive(Clone)]
        enum Slot {
            Drop,
            AsIs,
            Retime(TimeKeys, f64, f64),
        }
        let mut out = self.value.clone();
        let mut slots: Vec<Vec<Slot>> = self
            .arrays
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = get(&self.value, p).and_then(Value::as_array).map_or(0, Vec::len);
                vec![if primary.contains(&i) { Slot::Drop } else { Slot::AsIs }; n]
            })
            .collect();
        for (loc, s, e) in words {
            if let Some(slot) = slots.get_mut(loc.array).and_then(|a| a.get_mut(loc.index)) {
                *slot = Slot::Retime(loc.keys.clone(), *s, *e);
            }
        }
        for span in &self.spans {
            if let Some(slot) = slots.get_mut(span.array).and_then(|a| a.get_mut(span.index)) {
                *slot = if span.kept {
                    Slot::Retime(span.keys.clone(), span.start_s, span.end_s)
                } else {
                    Slot::Drop
                };
            }
        }
        for p in &self.points {
            if let Some(Value::Object(obj)) = get_mut(&mut out, &p.path) {
                obj.insert(p.key.clone(), p.unit.to_json(p.value_s));
            }
        }
        // Rewrite arrays deepest first so that paths of nested arrays stay valid.
        let mut order: Vec<usize> = (0..self.arrays.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.arrays[i].len()));
        for i in order {
            let Some(Value::Array(items)) = get_mut(&mut out, &self.arrays[i]) else { continue };
            let old = std::mem::take(items);
            for (mut item, slot) in old.into_iter().zip(&slots[i]) {
                match slot {
                    Slot::Drop => {}
                    Slot::AsIs => items.push(item),
                    Slot::Retime(keys, s, e) => {
                        if let Value::Object(obj) = &mut item {
                            obj.insert(keys.start.to_string(), keys.unit.to_json(*s));
                            obj.insert(keys.end.to_string(), keys.unit.to_json(*e));
                        }
                        items.push(item);
                    }
                }
            }
        }
        out
    }
}
