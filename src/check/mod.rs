//! `--check-eh` and `cargo worker-build check`: verify that a bundle unwinds, recovers and loads.
//! (Being written; see issue 4.)
