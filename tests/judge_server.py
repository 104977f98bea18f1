"""A judge on a real OpenAI-compatible server (127.0.0.1): prefers the response containing GOOD."""
import re

from tests.fault_server import FaultServer


class JudgeServer(FaultServer):
    """A judge that prefers the response containing GOOD (a tie when both or neither do), in both orders."""

    @staticmethod
    def _reply(body, text):
        found = re.search(r"\[Response A\]\n(.*?)\n\[End of response A\].*?\[Response B\]\n(.*?)\n\[End of response B\]",
                          text, re.S)
        a, b = (found.group(1), found.group(2)) if found else ("", "")
        verdict = "C" if ("GOOD" in a) == ("GOOD" in b) else ("A" if "GOOD" in a else "B")
        return f"Compared.\nVerdict: [[{verdict}]]", "stop"


class FirstShownJudgeServer(FaultServer):
    """A judge that always prefers the response shown first: 0% position-consistent, every combined
    verdict a tie although each order picks a side."""

    @staticmethod
    def _reply(body, text):
        return "The first one.\nVerdict: [[A]]", "stop"


class PointwiseJudgeServer(FaultServer):
    """A pointwise judge: 4 for a response containing GOOD, else 2."""

    @staticmethod
    def _reply(body, text):
        found = re.search(r"\[(?:The )?[Rr]esponse\]\n(.*?)\n\[End of (?:the )?response\]", text, re.S)
        answer = found.group(1) if found else text
        return ("Scored.\nScore: 4" if "GOOD" in answer else "Scored.\nScore: 2"), "stop"
