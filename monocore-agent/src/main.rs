//! `monocore-agent`: the program monocore runs inside each microVM; see
//! [`monocore_agent::guest`].

fn main() -> std::process::ExitCode {
    monocore_agent::guest::main()
}
