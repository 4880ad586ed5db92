"""The IVR: the menu file (errors name the line and the key) and the pure stepper."""
import pytest

from callcenter.ivr.flow import IvrFlow, PlayAndCollect, PlayMessage, RouteToQueue
from callcenter.ivr.model import MenuError, load_menu, parse_menu, validate_against

QUICK = """\
start: quick
menus:
  quick:
    text: 请选择。
    timeout_s: 2
    retries: 1
    default: {queue: general, category: other}
    choices:
      "2": {queue: leak, category: leak}
      "1": {menu: sub}
  sub:
    text: 子菜单。
    timeout_s: 2
    retries: 0
    default: {queue: general, category: other}
    choices:
      "3": {queue: general, category: water_quality}
      "*": {back: true}
invalid: 输入有误。
no_input: 没有收到。
goodbye: 再见。
"""


def test_the_embedded_menu_loads_and_names_every_queue_it_uses() -> None:
    menu = load_menu(queue_names=["general", "leak", "billing", "complaint"])
    assert menu.queues() == {"general", "leak", "billing", "complaint"}
    assert {"invalid", "no_input", "goodbye", "survey_question", "followup_question"} <= set(menu.prompts())


@pytest.mark.parametrize(("broken", "message"), [
    (QUICK.replace("start: quick", "start: nowhere"), "nowhere"),
    (QUICK.replace('"2": {queue: leak, category: leak}', '"2": {queue: leak, category: leak, menu: sub}'), r"menu\.yaml:9: menus\.quick\.choices\.2: a choice leads to exactly one of"),
    (QUICK.replace('"2":', '"x":'), "x"),
    (QUICK.replace("    timeout_s: 2\n    retries: 1", "    timeout_s: -1\n    retries: 1"), "timeout_s"),
    ("start: [unclosed", "not valid YAML"),
])
def test_a_broken_menu_file_says_what_and_where(broken: str, message: str) -> None:
    with pytest.raises(MenuError, match=message):
        parse_menu(broken, "menu.yaml")


def test_a_menu_routing_to_an_unknown_queue_is_refused() -> None:
    with pytest.raises(MenuError, match="leak"):
        validate_against(parse_menu(QUICK), ["general"], "menu.yaml", QUICK)


def test_keys_route_submenus_go_back_and_bad_or_no_input_retry_then_default() -> None:
    flow = IvrFlow(parse_menu(QUICK))
    assert isinstance(flow.start(), PlayAndCollect)
    assert isinstance(flow.on_digit("1"), PlayAndCollect)            # into sub
    assert isinstance(flow.on_digit("*"), PlayAndCollect)            # back to quick
    assert flow.on_digit("2") == RouteToQueue("leak", "leak", "2")

    lost = IvrFlow(parse_menu(QUICK))
    lost.start()
    assert lost.on_digit("9") == PlayMessage("invalid")              # not a choice: told so, once more
    assert isinstance(lost.on_played(), PlayAndCollect)
    # Out of retries: no caller is dropped, the menu's default queue takes them.
    assert lost.on_digit(None) == RouteToQueue("general", "other", "default")

    quiet = IvrFlow(parse_menu(QUICK))
    quiet.start()
    assert quiet.on_digit(None) == PlayMessage("no_input")
    assert isinstance(quiet.on_played(), PlayAndCollect)
