"""Wrong and right answers to the exercises that take code, one module per exercise (lessonNN_qK.py).

Each module holds `WRONG`: (name, code, fragment) triples, where `code` defines
the answer under the name the notebook checks and `fragment` is part of the
specific ❌ reason it must get; and `RIGHT`: (name, code) pairs written
differently from the solution, each of which must get ✅.
tests/test_exercises_answers.py runs them all.
"""
