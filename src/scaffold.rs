//! `cargo worker-build new` / `init`: projects from the templates in `templates/`.
//! (Being written; see issue 5.)
