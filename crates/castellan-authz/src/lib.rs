//! Placeholder: the engine lands with issue 3.
