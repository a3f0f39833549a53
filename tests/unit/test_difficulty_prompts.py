from sgi.skills.difficulty import judge
from sgi.skills.prompts import skill_exemplars, student_prompt
from sgi.skills.records import Item


def test_wrong_is_difficult_whatever_the_samples():
    v = judge(False, ["3", "3", "3"])
    assert (v.difficult, v.reason, v.agreement) == (True, "wrong", 3)


def test_consistency_below_two_of_three_is_difficult():
    v = judge(True, ["3", "4", "5"], min_agree=2)
    assert (v.difficult, v.reason, v.agreement) == (True, "inconsistent", 1)
    v = judge(True, ["3", "3", "5"], min_agree=2)
    assert (v.difficult, v.reason, v.agreement) == (False, "ok", 2)
    assert judge(True).difficult is False


def _item(i, q="q"):
    return Item(item_id=i, question=q, answer="1", split="pool")


def test_skill_exemplars_share_skills_and_are_stable():
    pool = {"carry": [_item("p1"), _item("p2"), _item("p3")], "sign": [_item("p4")]}
    target = _item("x")
    first = skill_exemplars(target, ["sign", "carry"], pool, k=3)
    assert first[0].item_id == "p4" and len(first) == 3
    assert first == skill_exemplars(target, ["sign", "carry"], pool, k=3)
    assert all(e.item_id != "p1" for e in skill_exemplars(_item("p1"), ["carry"], pool, k=5))
    assert student_prompt("What is 2+2?") == "What is 2+2?"
    assert student_prompt("Q2", [Item("a", "Q1", "5", "pool")]).endswith("Question: Q2\nAnswer:")
