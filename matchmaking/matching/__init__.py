"""Pure matching engine: stdlib, numpy, scipy, scikit-learn, rapidfuzz only."""
