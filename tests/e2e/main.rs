//! End-to-end tests: the real server on port 0 with a temporary SQLite directory (or, when
//! `SWITCHBOARD_TEST_DATABASE_URL` is set, a PostgreSQL schema of its own), driven over real HTTP and
//! WebSocket. One test binary (every extra one is another full link).

mod support;

mod api;
mod comment_rules;
mod flows;
mod library;
mod media_in;
mod media_out;
mod meta;
mod multinode;
mod object_storage;
mod profiles;
mod push;
mod realtime;
mod routing;
mod setup;
mod shopee;
mod telegram;
mod web;
mod whatsapp;
mod widget;
mod zalo;
