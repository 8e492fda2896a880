"""Launchers (one command each) and the papers' experiment grids and tables.

A package so that its modules import each other, and the configs, by name
once the project is installed (`pip install -e .`), from any folder.
"""
