//! Examples of building on Portico live in this package's `[[example]]` targets; see the README.
