"""Name pools for synthetic persons: 姓 and 名 with their readings (full-width katakana).

The base is Faker's ``ja_JP`` person provider: its surname *pairs* (kanji, katakana) with their
national frequencies, and its male and female given-name pairs. Faker alone has 50 surnames and
51 given names, so we add common surnames of the Tokai region (weights: our estimate, in the same
unit as Faker's counts) and given names by birth cohort, so that a 4情報 search does not find a
crowd of namesakes. We only read Faker's tables; drawing is done by the caller's
``random.Random`` (fast and deterministic).

外字 surnames (requirement D4): :data:`GAIJI_SURNAMES` spell common surnames with characters
outside JIS X 0208 — 髙 (U+9AD9), 﨑 (U+FA11), 𠮷 (U+20BB7), 濵, 德, 栁, 槗, and 葛 followed by the
ideographic variation selector U+E0100 — kept exactly as written. 邊, 邉, 齋 are *in* JIS X 0208
(level 2), so 渡邊 / 渡邉 / 齋藤 appear as ordinary surnames, not as 外字.

>>> from jukinet import moji
>>> all(moji.count_gaiji(s) == 1 for s, _ in GAIJI_SURNAMES)
True
>>> any(moji.count_gaiji(s) for s, _ in SURNAMES), any(moji.count_gaiji(n) for pool in GIVEN.values() for n, _ in pool)
(False, False)
"""

from __future__ import annotations

from faker.providers.person.ja_JP import Provider as _JaPerson

# --- surnames ---------------------------------------------------------------------------------

_EXTRA_SURNAMES = """
水谷 ミズタニ 40000|服部 ハットリ 45000|中西 ナカニシ 45000|谷口 タニグチ 40000|奥田 オクダ 30000|北川 キタガワ 30000
辻 ツジ 30000|世古 セコ 8000|浜口 ハマグチ 25000|中井 ナカイ 25000|大西 オオニシ 40000|坂口 サカグチ 30000
野村 ノムラ 45000|川口 カワグチ 35000|村田 ムラタ 40000|上野 ウエノ 40000|東 ヒガシ 25000|西川 ニシカワ 35000
平井 ヒライ 30000|市川 イチカワ 40000|宮本 ミヤモト 50000|松井 マツイ 45000|森本 モリモト 40000|小西 コニシ 25000
杉本 スギモト 35000|内田 ウチダ 50000|堀 ホリ 30000|樋口 ヒグチ 35000|稲垣 イナガキ 20000|川村 カワムラ 35000
岩崎 イワサキ 40000|宮崎 ミヤザキ 45000|吉川 ヨシカワ 40000|吉村 ヨシムラ 45000|高田 タカダ 45000|高木 タカギ 50000
柴田 シバタ 50000|渡邊 ワタナベ 15000|渡邉 ワタナベ 20000|齋藤 サイトウ 20000|濱口 ハマグチ 8000|長尾 ナガオ 20000
片岡 カタオカ 30000|竹内 タケウチ 50000|丸山 マルヤマ 45000|野口 ノグチ 45000|大川 オオカワ 20000|久保 クボ 40000
西田 ニシダ 40000|田村 タムラ 50000|横山 ヨコヤマ 50000|増田 マスダ 45000|平野 ヒラノ 40000|安藤 アンドウ 45000
河合 カワイ 25000|浅野 アサノ 30000|早川 ハヤカワ 30000|松岡 マツオカ 35000|中山 ナカヤマ 50000|出口 デグチ 15000
倉田 クラタ 12000|大橋 オオハシ 30000|奥山 オクヤマ 15000|尾崎 オザキ 35000|垣内 カキウチ 6000|中谷 ナカタニ 15000
別所 ベッショ 5000|小倉 オグラ 15000|駒田 コマダ 4000|森川 モリカワ 20000|伊達 ダテ 5000|小野寺 オノデラ 15000
鈴村 スズムラ 4000|加納 カノウ 10000|後藤田 ゴトウダ 2000|田畑 タバタ 8000|山路 ヤマジ 5000|藤本 フジモト 40000
"""

SURNAMES: list[tuple[str, str]] = []
SURNAME_WEIGHTS: list[float] = []
for (_kanji, _kana, _romaji), _w in _JaPerson.last_name_pairs.items():
    SURNAMES.append((_kanji, _kana))
    SURNAME_WEIGHTS.append(float(_w))
for _item in _EXTRA_SURNAMES.replace("\n", "|").split("|"):
    if _item.strip():
        _kanji, _kana, _w = _item.split()
        SURNAMES.append((_kanji, _kana))
        SURNAME_WEIGHTS.append(float(_w))

#: Common surnames written with a 外字 (each has exactly one).
GAIJI_SURNAMES: list[tuple[str, str]] = [
    ("\u9ad9橋", "タカハシ"), ("\u9ad9田", "タカダ"), ("\u9ad9木", "タカギ"), ("\u9ad9山", "タカヤマ"),
    ("山\ufa11", "ヤマザキ"), ("宮\ufa11", "ミヤザキ"), ("岩\ufa11", "イワサキ"), ("尾\ufa11", "オザキ"),
    ("\U00020bb7田", "ヨシダ"), ("\U00020bb7川", "ヨシカワ"), ("\U00020bb7村", "ヨシムラ"),
    ("葛\U000e0100西", "カサイ"), ("葛\U000e0100城", "カツラギ"),
    ("\u6ff5田", "ハマダ"), ("\u6ff5口", "ハマグチ"), ("\u5fb7田", "トクダ"), ("\u6801田", "ヤナギダ"),
    ("\u69d7本", "ハシモト"),
]

# --- given names by sex and birth cohort ------------------------------------------------------

_MALE = {
    1950: "清 キヨシ|正 タダシ|実 ミノル|勇 イサム|茂 シゲル|博 ヒロシ|進 ススム|弘 ヒロシ|武 タケシ|正雄 マサオ"
          "|一郎 イチロウ|勝 マサル|昭 アキラ|三郎 サブロウ|和夫 カズオ|義雄 ヨシオ|秀夫 ヒデオ|稔 ミノル|修 オサム|隆 タカシ",
    1980: "誠 マコト|浩 ヒロシ|健一 ケンイチ|哲也 テツヤ|隆 タカシ|修 オサム|聡 サトシ|淳 ジュン|学 マナブ|剛 ツヨシ"
          "|和也 カズヤ|直樹 ナオキ|英樹 ヒデキ|浩二 コウジ|康弘 ヤスヒロ|伸一 シンイチ|大輔 ダイスケ|秀樹 ヒデキ|健 ケン|智 サトシ",
    2000: "翔太 ショウタ|拓也 タクヤ|大輔 ダイスケ|健太 ケンタ|翔 ショウ|達也 タツヤ|亮 リョウ|直人 ナオト|裕太 ユウタ"
          "|涼平 リョウヘイ|拓真 タクマ|翼 ツバサ|智也 トモヤ|和也 カズヤ|洋介 ヨウスケ|亮介 リョウスケ|大樹 ダイキ|雄太 ユウタ"
          "|駿 シュン|祐介 ユウスケ",
    9999: "蓮 レン|陽翔 ハルト|湊 ミナト|蒼 アオイ|悠真 ユウマ|樹 イツキ|大翔 ヒロト|颯太 ソウタ|陽太 ヨウタ|悠人 ユウト"
          "|朝陽 アサヒ|律 リツ|碧 アオイ|大和 ヤマト|瑛太 エイタ|奏太 カナタ|陸 リク|蒼空 ソラ|結翔 ユイト|悠斗 ユウト",
}
_FEMALE = {
    1950: "和子 カズコ|幸子 サチコ|節子 セツコ|弘子 ヒロコ|京子 キョウコ|洋子 ヨウコ|美代子 ミヨコ|久子 ヒサコ|文子 フミコ"
          "|静子 シズコ|照子 テルコ|千代子 チヨコ|澄子 スミコ|春子 ハルコ|登美子 トミコ|信子 ノブコ|恵美子 エミコ|悦子 エツコ"
          "|八重子 ヤエコ|千代 チヨ",
    1980: "裕子 ユウコ|恵子 ケイコ|久美子 クミコ|由美子 ユミコ|真由美 マユミ|明美 アケミ|直美 ナオミ|智子 トモコ|陽子 ヨウコ"
          "|美穂 ミホ|純子 ジュンコ|香織 カオリ|恵 メグミ|美香 ミカ|典子 ノリコ|由紀 ユキ|順子 ジュンコ|幸恵 ユキエ|直子 ナオコ"
          "|美加子 ミカコ",
    2000: "愛 アイ|彩 アヤ|美咲 ミサキ|千尋 チヒロ|沙織 サオリ|麻衣 マイ|優 ユウ|舞 マイ|結衣 ユイ|春香 ハルカ|加奈 カナ"
          "|里佳 リカ|桃子 モモコ|彩香 アヤカ|真綾 マアヤ|明日香 アスカ|七海 ナナミ|遥 ハルカ|萌 モエ|葵 アオイ",
    9999: "陽葵 ヒマリ|凛 リン|結菜 ユイナ|芽依 メイ|紬 ツムギ|澪 ミオ|結愛 ユア|杏 アン|咲良 サクラ|莉子 リコ|心春 コハル"
          "|美桜 ミオ|陽菜 ヒナ|花 ハナ|詩 ウタ|葵 アオイ|凜 リン|楓 カエデ|琴音 コトネ|彩葉 イロハ",
}


def _pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(item.split()) for item in text.split("|")]


def _cohorts(table: dict, faker_pairs) -> dict[int, list[tuple[str, str]]]:
    faker = [(k, kana) for k, kana, _ in faker_pairs]
    out = {}
    for upper, text in table.items():
        pool = _pairs(text)
        if upper in (1980, 2000):   # Faker's names are of the 1960s–1990s
            pool += [p for p in faker if p not in pool]
        out[upper] = pool
    return out


#: (sex, cohort upper bound of the birth year) -> [(名, メイ)]; sex "1" 男, "2" 女.
GIVEN: dict[tuple[str, int], list[tuple[str, str]]] = {}
for _sex, _table, _fp in (("1", _MALE, _JaPerson.first_name_male_pairs),
                          ("2", _FEMALE, _JaPerson.first_name_female_pairs)):
    for _upper, _pool in _cohorts(_table, _fp).items():
        GIVEN[(_sex, _upper)] = _pool

COHORTS = (1950, 1980, 2000, 9999)


def given_pool(sex: str, birth_year: int) -> list[tuple[str, str]]:
    """The given names for a person of ``sex`` born in ``birth_year``.

    >>> given_pool("2", 1940)[0], given_pool("1", 2015)[0]
    (('和子', 'カズコ'), ('蓮', 'レン'))
    """
    for upper in COHORTS:
        if birth_year < upper:
            return GIVEN[(sex, upper)]
    return GIVEN[(sex, 9999)]
