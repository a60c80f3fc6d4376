//! The end-to-end tests, one binary (as ripgrep's): the real binary as a process against real
//! Apache Kafka clusters started once per kind by `scripts/kafka` and shared by every test here.
//! `common` is the one shared harness; it prints a command's stdout and stderr when a check fails.

mod common;

mod acceptance;
mod acl;
mod broker;
mod cli;
mod event_format;
mod faults;
mod fleet;
mod http;
mod pictures;
mod secrets;
mod verdicts;
mod workloads;
