//! A separate VM helper binary, for the test of `SpawnOptions::helper_path`
//! (by default a program is its own helper).

fn main() -> std::process::ExitCode {
    monocore::vm::helper_main()
}
