//! `monocore-agent`: the program monocore runs inside each microVM; see
//! [`guest`]. The protocol it speaks with the host is this package's
//! library, `monocore_agent`.

mod guest;

fn main() -> std::process::ExitCode {
    guest::main()
}
