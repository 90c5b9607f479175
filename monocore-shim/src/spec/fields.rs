//! Walking the spec's JSON: every key of an object is either taken by the
//! mapping or refused by [`Fields::finish`], so nothing is dropped unseen.

use serde_json::{Map, Value};

use super::{
    error::{Refusal, SpecError},
    path::SpecPath,
};

/// At most this much of an offending value is quoted in a message.
const MAX_QUOTE: usize = 120;

/// The keys of one JSON object, with the ones the mapping has looked at.
pub struct Fields<'a> {
    at: SpecPath,
    map: &'a Map<String, Value>,
    seen: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// The object `value`, found at `at`.
    pub fn of(value: &'a Value, at: SpecPath) -> Result<Self, SpecError> {
        let map = object(value, &at)?;
        Ok(Self {
            at,
            map,
            seen: Vec::new(),
        })
    }

    /// The value of `key` and its path, if it is present and not empty
    /// (see [`is_empty`]). Marks the key as handled either way.
    pub fn take(&mut self, key: &'static str) -> Option<(&'a Value, SpecPath)> {
        self.seen.push(key);
        self.map
            .get(key)
            .filter(|v| !is_empty(v))
            .map(|v| (v, self.at.key(key)))
    }

    /// Refuses every key not taken that holds a value: with `refusal` made
    /// from its value, or as [`Refusal::UnknownField`].
    pub fn finish_with(self, refusal: impl Fn(&Value) -> Refusal) -> Result<(), SpecError> {
        for (key, value) in self.map {
            if !self.seen.contains(&key.as_str()) && !is_empty(value) {
                return Err(SpecError::refused(self.at.key(key), refusal(value)));
            }
        }
        Ok(())
    }

    /// Refuses every key not taken that holds a value, as unknown.
    pub fn finish(self) -> Result<(), SpecError> {
        self.finish_with(|_| Refusal::UnknownField)
    }
}

/// Whether a value asks for nothing: `null`, `""`, `[]`, or an object whose
/// values all ask for nothing (booleans and numbers always ask for
/// something). Such values are never refused.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The value as JSON text, cut for a message.
pub fn quote(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(MAX_QUOTE) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text,
    }
}

fn wrong(at: &SpecPath, expected: &'static str, value: &Value) -> SpecError {
    SpecError::refused(
        at.clone(),
        Refusal::WrongType {
            expected,
            found: quote(value),
        },
    )
}

/// The value as an object.
pub fn object<'a>(value: &'a Value, at: &SpecPath) -> Result<&'a Map<String, Value>, SpecError> {
    value
        .as_object()
        .ok_or_else(|| wrong(at, "an object", value))
}

/// The value as an array.
pub fn array<'a>(value: &'a Value, at: &SpecPath) -> Result<&'a [Value], SpecError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong(at, "an array", value))
}

/// The value as a string.
pub fn string<'a>(value: &'a Value, at: &SpecPath) -> Result<&'a str, SpecError> {
    value.as_str().ok_or_else(|| wrong(at, "a string", value))
}

/// The value as a boolean.
pub fn boolean(value: &Value, at: &SpecPath) -> Result<bool, SpecError> {
    value.as_bool().ok_or_else(|| wrong(at, "a boolean", value))
}

/// The value as an unsigned integer.
pub fn unsigned(value: &Value, at: &SpecPath) -> Result<u64, SpecError> {
    value
        .as_u64()
        .ok_or_else(|| wrong(at, "an unsigned integer", value))
}

/// The value as a signed integer.
pub fn signed(value: &Value, at: &SpecPath) -> Result<i64, SpecError> {
    value.as_i64().ok_or_else(|| wrong(at, "an integer", value))
}

/// The value as a list of strings.
pub fn strings<'a>(value: &'a Value, at: &SpecPath) -> Result<Vec<&'a str>, SpecError> {
    array(value, at)?
        .iter()
        .enumerate()
        .map(|(i, v)| string(v, &at.index(i)))
        .collect()
}
