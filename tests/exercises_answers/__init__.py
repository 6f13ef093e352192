"""Wrong and right answers to the exercises that take code, one module per exercise (lessonNN_qK.py).

Each module holds `WRONG`: (name, code, fragment) triples, where `code` defines
the answer under the name the notebook checks and `fragment` is part of the
specific ❌ reason it must get; and `RIGHT`: (name, code) pairs written
differently from the solution, each of which must get ✅.
tests/test_exercises_answers.py runs them all: every exercise must have a module,
an exercise that takes code at least two wrong answers (five for lesson 03's
middleware) and one right answer, and no verdict may show a whole key.
Lesson 07's modules (cluster-front) use the same format.
"""
