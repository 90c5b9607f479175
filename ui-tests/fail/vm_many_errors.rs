// Every error is reported at once, and the config stays usable (no follow-on errors).
use monocore::vm;

fn main() {
    let config = vm! {
        ram: 0,
        vcpus: 0,
        exec: "/bin/\tsh",
        port_map: ["8080:0"],
        mapped_dirs: ["/srv:srv"],
        log_lvl: Info,
    };
    let _ = config.ram_mib;
}
