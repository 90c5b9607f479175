//! Procedural macros for monocore.
//!
//! This file stays thin: each macro's parsing, validation and expansion live
//! in their own modules.
