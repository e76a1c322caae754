"""The committee's record: periodic surveillance reports, their signatures, and the PDF engine (decision 0600)."""
