//! The README as a user reads it: every Rust block is complete as displayed (rustdoc's hidden
//! `# ` lines show on the crate registry and on code hosts, where they do not compile), and the
//! daemon template it shows is `examples/daemon.rs`, byte for byte. The blocks themselves are
//! compiled as doctests (the README is the crate's documentation).

const README: &str = include_str!("../README.md");

/// The Rust code blocks: (first line number, lines).
fn rust_blocks() -> Vec<(usize, Vec<&'static str>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (i, line) in README.lines().enumerate() {
        match &mut current {
            None if line.starts_with("```rust") => current = Some((i + 2, Vec::new())),
            Some(_) if line.starts_with("```") => blocks.extend(current.take()),
            Some((_, lines)) => lines.push(line),
            None => {}
        }
    }
    blocks
}

#[test]
fn readme_rust_blocks_hide_no_lines() {
    let blocks = rust_blocks();
    assert!(blocks.len() >= 2, "the README's Rust blocks were not found");
    for (start, lines) in blocks {
        for (k, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            assert!(
                !(t == "#" || t.starts_with("# ")),
                "README.md:{}: a hidden line, which readers see but cannot compile: {line:?}",
                start + k
            );
        }
    }
}

#[test]
fn readme_daemon_template_is_the_example() {
    let begin = README
        .find("<!-- daemon: begin -->\n```rust,no_run\n")
        .expect("README has the daemon block");
    let body = &README[begin..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body
        .find("```\n<!-- daemon: end -->")
        .expect("README closes the block");
    let example = include_str!("../examples/daemon.rs");
    assert_eq!(
        &body[..end],
        example,
        "README's daemon block differs from examples/daemon.rs"
    );
}
