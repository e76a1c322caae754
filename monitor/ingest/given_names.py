"""Common given names (lower case), for telling "John Smith" from "Aquilion ONE" by shape.

Names that are also everyday words in radiology metadata or English (Ray, Gene, Mark, Will,
May, Grace, Max, Art, Pat, Dawn...) are left out on purpose: a name next to a capitalized word
is refused, so a word that is both would refuse legitimate scanner models and protocols.
"""

from __future__ import annotations

GIVEN_NAMES = frozenset(
    """
    aaron abdul abdullah abigail adam adrian ahmad ahmed aidan aisha alan albert alberto alejandro aleksandr
    alex alexander alexandra alexandre alexis alfred alfredo ali alice alicia alison amanda amelia amir amy
    ana anastasia andre andrea andreas andrew andy angela angelo anita ann anna anne annette anthony antoine
    antonio arjun arthur ashley barbara beatrice ben benjamin bernard beth betty beverly bianca bradley
    brandon brenda brian bruce bruno caitlin camille carl carla carlos caroline carolyn catherine cecilia
    charles charlotte chen chloe christian christina christine christopher claire clara claudia colin connor
    craig cristina cynthia daniel daniela danielle david deborah denise dennis derek diana diane diego dimitri
    dmitri dolores donald donna dorothy douglas dylan edward elena elias elif elizabeth ella ellen emily emma
    enrique eric erik ernesto esther ethan evelyn fatima felipe felix fernando francesca francesco francisco
    francois frederick gabriel gabriela gary george gerald gerhard giovanni giulia giuseppe gloria gordon
    gregory gunther hannah hans harold harry hassan heather heidi helen helena henry hiroshi hugo ian igor
    ingrid irene isaac isabel isabella isabelle ivan jacob jacqueline james jan jane janet janice jason javier
    jean jeffrey jennie jennifer jeremy jessica joan joanna joao johanna johannes john jonathan jorge jose
    josef joseph josephine joshua juan judith julia julian julie julien jurgen justin karen karin karl
    katarina katherine kathleen kathryn katie katrin keith kenneth kevin kim kimberly klaus kyle larry lars
    laura lauren lawrence leah lena leon leonardo lily linda lisa lorenzo louis louise lucas lucia luis lukas
    luke magdalena magnus manuel marco margaret maria marie marina mario marion marta martha martin mary mateo
    matthew matthias maurice megan mehmet melissa michael michelle miguel mikhail mohammad mohammed monica
    muhammad mustafa nancy natalia natalie nathan nicholas nicola nicolas nicole niklas nikolai nils noah olaf
    olga oliver olivia omar oscar pablo pamela patricia patrick paul paula pavel pedro peter philip philippe
    pierre pietro priya rachel rafael rahul raj rajesh ramon raquel rebecca richard robert roberto roger
    ronald rosa rosalind ruth ryan sabine samantha samuel sandra sanjay sarah scott sean sebastian sergei
    sharon shirley simon sofia sophia sophie stanislav stefan stephanie stephen steven sunil susan sven
    svetlana sylvia tanya teresa thierry thomas timothy tobias tyler ulrich ursula valentina valerie vanessa
    vera veronica vikram vincent vladimir walter wang wei wendy william wolfgang xavier yan yasmin yuki yusuf
    yvonne zachary zoe
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
