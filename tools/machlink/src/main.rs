fn main() {
    std::process::exit(machlink::run(std::env::args_os().skip(1)));
}
