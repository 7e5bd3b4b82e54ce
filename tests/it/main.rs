//! Black-box tests of the `securify` binary: one test binary made of modules.

// A test fails by panicking, so unwrapping is the point; scenario tests read best end to end.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod alerts;
mod api;
mod auth;
mod blocklist;
mod browser;
mod cli;
mod common;
mod crash;
mod limits;
mod logs;
mod pages;
mod search;
mod tidy;
mod web;
