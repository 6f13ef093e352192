"""05 q3: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    ('"a"', 'runs_in_a_cell = "a"', "already runs inside Jupyter's loop"),
    ('"c"', 'runs_in_a_cell = "c"', "cannot be called from a running event loop"),
    ("2", "runs_in_a_cell = 2", "one letter in quotes"),
]

RIGHT = [
    ("b)", 'runs_in_a_cell = "b)"'),
    ("(B)", 'runs_in_a_cell = " (B) "'),
    ("the line itself", 'runs_in_a_cell = "await Runner.run(agent, query)"'),
]
