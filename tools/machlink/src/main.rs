fn main() {
    eprintln!("machlink: {:?}", std::env::args().collect::<Vec<_>>());
    std::process::exit(1);
}
