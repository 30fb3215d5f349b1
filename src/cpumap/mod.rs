//! CPU maps (placeholder).
