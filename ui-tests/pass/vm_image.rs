// `vm!` with an `image` makes an `ImageVmConfig`: the reference (checked at
// compile time), and the explicit settings the image's defaults go under.
use monocore::{image::ImageVmConfig, vm};

fn main() {
    let config: ImageVmConfig = vm! {
        image: "localhost:5000/busybox:test",
        ram: 256,
        args: ["-c", "echo hi"],
        env: ["GREETING=hello"],
    };
    assert_eq!(config.image, "localhost:5000/busybox:test");
    assert_eq!(config.config.ram_mib, 256);
    assert!(config.config.exec_path.is_none());
    let reference = String::from("alpine:3.20");
    let by_expression = vm! { image: reference, ram: 128 };
    assert_eq!(by_expression.image, "alpine:3.20");
}
