"""01 q1: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    ('{"list_items"}', 'stranger_can_call = {"list_items"}', "A stranger can call add_item"),
    ('{"buy_everything"}', 'stranger_can_call = {"buy_everything"}', "not a tool of this server"),
]

RIGHT = [
    ("a list", 'stranger_can_call = ["add_item", "remove_item", "list_items", "place_order", "list_orders"]'),
]
