"""Inference tools shared by the estimators (multiplier bootstrap, ...)."""
