// An image reference is checked as docker parses one: lowercase repository.
use monocore::vm;

fn main() {
    let config = vm! { image: "Alpine:3.20", ram: 256 };
    let _ = config.image;
}
