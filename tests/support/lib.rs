//! Helpers shared by monocore's integration tests and benchmarks.

/// Where the build script found `libkrunfw.so.5`, or `None` if it did not.
pub fn libkrunfw_at_build_time() -> Option<&'static str> {
    Some(env!("MONOCORE_BUILD_LIBKRUNFW")).filter(|p| !p.is_empty())
}
