//! Amazon States Language interpreter (in progress).
