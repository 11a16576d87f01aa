//! Harness for TaskBell's end-to-end tests (being written): starts real
//! processes (server, Redis, D-Bus, dunst, Xvfb) on free ports and cleans them
//! up on drop.
