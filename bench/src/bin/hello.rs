//! A std hello-world, built with the same size-optimised profile as `echo_server`: the binary
//! size every std Rust program pays before any library of its own.

fn main() {
    println!("hello, world");
}
