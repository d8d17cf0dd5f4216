//! Compile-time tests of `#[component]`, `#[handler]` and `#[remote]`.
//!
//! `pass/` must compile and run; `fail/` must fail with exactly the reviewed
//! `.stderr` next to each case. After changing a message, regenerate with
//! `TRYBUILD=overwrite cargo test -p pitaya --test ui` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
