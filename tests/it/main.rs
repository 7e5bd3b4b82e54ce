//! Black-box tests of the `securify` binary: one test binary made of modules.

mod api;
mod auth;
mod cli;
mod common;
mod crash;
mod tidy;
mod web;
