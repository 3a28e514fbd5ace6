//! Integration tests: the real server on 127.0.0.1 with a real HTTP client.

mod access;
mod audit;
mod auth;
mod backup;
mod connections;
mod downloads;
mod duplicate_keys;
mod errors;
mod export;
mod form_rules;
mod forms;
mod hardening;
mod helpers;
mod limits;
mod observability;
mod openapi;
mod process;
mod properties;
mod questionnaire;
mod review;
mod review_rules;
mod sign_in_attacks;
mod simulate;
mod startup;
mod submissions;
mod users;
