"""Generators of test (and demo) media: real faces, real synthetic speech, bad files."""
