"""Statistics that know no LLM: the nonlinear least-squares engine and its inference.

``nls`` fits a model ``f(x, theta)`` and returns statsmodels-style results (params, bse,
covariance, ``conf_int``, ``get_prediction(...).summary_frame(alpha)``), with ``nls_core``
(solver and covariance), ``nls_report`` (the ``summary()`` text) and ``bootstrap``
(case, residual and grouped resampling); ``nested_tests`` compares nested fits (F and
likelihood-ratio tests); ``intervals`` is the numpy-only predictive distribution
(Student t on the absolute, relative or log scale) that the estimator evaluates at run time.
This layer imports no other layer of the package; this file imports nothing, so that
``fitting.stats.intervals`` stays as light as numpy.
"""
