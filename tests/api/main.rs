//! Integration tests: the real server on 127.0.0.1 with a real HTTP client.

mod access;
mod audit;
mod auth;
mod backup;
mod errors;
mod export;
mod forms;
mod hardening;
mod helpers;
mod observability;
mod openapi;
mod process;
mod properties;
mod questionnaire;
mod review;
mod simulate;
mod startup;
mod submissions;
mod users;
