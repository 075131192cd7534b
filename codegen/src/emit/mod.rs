//! Emitters: the IR rendered through the templates of `templates/`.

pub mod rust;
