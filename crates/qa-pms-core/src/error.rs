//! The one error a domain constructor returns: which field was wrong and why.

/// Input that does not make a valid domain value. The API answers it with a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Checks that a required text field is non-blank and at most `max` characters long, and trims it.
pub(crate) fn required_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    bounded_text(field, trimmed, max).map(str::to_owned)
}

/// Checks that a text field is at most `max` characters long and holds no NUL, which PostgreSQL
/// cannot store (and SQLite's full-text index stops reading at).
pub(crate) fn bounded_text<'a>(
    field: &'static str,
    value: &'a str,
    max: usize,
) -> Result<&'a str, ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL (U+0000) characters",
        ));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value)
}
