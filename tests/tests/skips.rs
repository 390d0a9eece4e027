//! A test that cannot run here says so where `.ci/test` counts it: one
//! line, the test's name and the reason. (Its own binary: the log's
//! place is an environment variable, which is the whole process's.)

#[test]
fn a_skip_is_recorded_with_the_tests_name_and_reason() {
    let log = std::env::temp_dir().join(format!("skips-{}.txt", std::process::id()));
    // SAFETY: this binary's only test; nothing else reads the environment.
    unsafe { std::env::set_var("HELLO_SKIP_LOG", &log) };
    hello_tests::skipped("no such thing on this host");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(text, "a_skip_is_recorded_with_the_tests_name_and_reason: no such thing on this host\n");
}
