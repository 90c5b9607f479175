//! Procedural macros for monocore (filled in by issues 3 and 4).
