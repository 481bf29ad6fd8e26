"""The framework overhead: what exact physics cannot give, fitted per framework.

``specs`` holds the overhead model specs (their formulas, Jacobians and named parameters)
and the feature builder that turns a configuration into physics features; it is the one
module the estimator shares with the fit. ``observations`` turns profile records into the
fitted response per framework, ``fit`` fits the candidate specs by nonlinear least squares
and cross-validates them, and ``log_scaling`` tests the logarithmic batch-scaling hypothesis
on a framework's observations. This layer may import physics, stats and data. This file
imports nothing, so that the estimator can import ``specs`` without the fitting code.
"""
