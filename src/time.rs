//! Time formatting (in progress)
