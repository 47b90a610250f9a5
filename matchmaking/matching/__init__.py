"""Pure matching engine: stdlib, numpy, scipy, scikit-learn, rapidfuzz only.

Entry points: ``engine.Index`` (build, add/update/remove, match, search, rematch_all),
``scoring.score_pair`` (one explained pair), ``taxonomy.suggest_codes`` (List-of-Waste codes for
free text), ``evaluate.run_evaluate`` and ``bench.run_bench``.
"""
