"""SpineReview machine learning: phantom, models, training, evaluation, inference.

Never imports Django or spinereview. The web side imports only ml.inference.api.
"""
