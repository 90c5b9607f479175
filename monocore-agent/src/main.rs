//! `monocore-agent`: the program monocore runs inside each microVM (see
//! [`guest`]). It speaks the protocol of the `monocore_agent` library.

mod guest;

fn main() -> std::process::ExitCode {
    guest::main()
}
