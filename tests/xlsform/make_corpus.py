#!/usr/bin/env python3
"""Writes the XLSForm workbooks of tests/xlsform/ (committed; run again after changing this file).

Each workbook is written as a person would in Excel or WPS: a survey sheet, a choices sheet and a
settings sheet, labels in Chinese (the default language) and English. `labour-survey.xlsx` is the
county's survey with this server's extension columns; `kitchen-sink.xlsx` has a row for every
line of the mapping (docs/xlsform.md); `household.xls` is the old Excel format; the `broken-*`
workbooks are ones both pyxform and this server must refuse; `refused/` holds workbooks only this
server refuses (what it does not map, files made to exhaust a reader). Needs openpyxl and xlwt
(PyPI).
"""
import json
import pathlib
import zipfile

import openpyxl
import xlwt

HERE = pathlib.Path(__file__).resolve().parent
ZH = '中文 (zh-CN)'
EN = 'English (en)'
EMPLOYED = ("selected(${employment_status}, 'stable') or selected(${employment_status}, 'flexible')"
            " or selected(${employment_status}, 'self_employed')")


def sheet_rows(header, rows):
    return [header] + [[row.get(column, '') for column in header] for row in rows]


def write_xlsx(name, sheets):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(HERE / name)


def write_xls(name, sheets):
    book = xlwt.Workbook(encoding='utf-8')
    for title, rows in sheets.items():
        sheet = book.add_sheet(title)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value != '':
                    sheet.write(r, c, value)
    book.save(str(HERE / name))


def choices(lists):
    rows = []
    for list_name, items in lists.items():
        for name, zh, en in items:
            rows.append({'list_name': list_name, 'name': name, f'label::{ZH}': zh, f'label::{EN}': en})
    return sheet_rows(['list_name', 'name', f'label::{ZH}', f'label::{EN}'], rows)


TRAININGS = [('electrician', '电工', 'Electrician'), ('welding', '电焊工', 'Welder'),
             ('auto_repair', '汽车修理', 'Car repair'), ('chinese_cooking', '中式烹调', 'Chinese cooking'),
             ('nursery_care', '保育员', 'Nursery care'), ('infant_care', '育婴师', 'Infant care'),
             ('entrepreneurship', '创业培训', 'Starting a business'),
             ('cloud_customer_service', '云客服', 'Cloud customer service'), ('other', '其他', 'Other')]

LABOUR_LISTS = {
    'township': [(t, t, t) for t in ['平马镇', '祥周镇', '林逢镇', '思林镇', '印茶镇', '江城镇', '朔良镇',
                                     '义圩镇', '那拔镇', '作登瑶族乡']],
    'yes_no': [('true', '是', 'Yes'), ('false', '否', 'No')],
    'gender': [('male', '男', 'Male'), ('female', '女', 'Female')],
    'education': [('none', '未上学', 'None'), ('primary', '小学', 'Primary'),
                  ('junior_secondary', '初中', 'Junior secondary'), ('senior_secondary', '高中', 'Senior secondary'),
                  ('vocational', '中专/技校', 'Vocational'), ('college', '大专及以上', 'College')],
    'capacity': [('full', '完全劳动能力', 'Full'), ('partial', '部分劳动能力', 'Partial'), ('none', '无劳动能力', 'None')],
    'employment': [('stable', '稳定就业', 'Stable job'), ('flexible', '灵活就业', 'Flexible work'),
                   ('self_employed', '自主创业', 'Self-employed'), ('unemployed', '未就业', 'Not working')],
    'location': [('township', '乡镇内', 'In the township'), ('county', '县内乡镇外', 'In the county'),
                 ('guangxi', '区内县外', 'In Guangxi'), ('guangdong', '广东', 'Guangdong'),
                 ('other_province', '其他省份', 'Another province')],
    'job_type': [('enterprise', '企业务工', 'Enterprise'), ('workshop', '扶贫车间', 'Poverty-relief workshop'),
                 ('public_welfare_post', '公益性岗位', 'Public-welfare post'), ('own_business', '自主经营', 'Own business'),
                 ('agriculture', '农业生产', 'Farming'), ('other', '其他', 'Other')],
    'reason': [('no_skills', '缺乏技能', 'No skills'), ('caring_for_family', '照顾家庭', 'Caring for family'),
               ('illness_or_disability', '疾病或残疾', 'Illness or disability'),
               ('no_suitable_job', '没有合适岗位', 'No suitable job'), ('too_old', '年龄偏大', 'Too old'),
               ('studying', '在读', 'Studying'), ('other', '其他', 'Other')],
    'trainings': TRAININGS,
    'support': [('job_fair', '招聘会', 'Job fair'), ('transport_subsidy', '交通补贴', 'Transport subsidy'),
                ('employment_bonus', '就业奖补', 'Employment bonus'), ('startup_loan', '创业担保贷款', 'Start-up loan'),
                ('skills_training', '技能培训', 'Skills training')],
}

SURVEY_HEADER = ['type', 'name', f'label::{ZH}', f'label::{EN}', f'hint::{ZH}', 'required', 'relevant',
                 'constraint', f'constraint_message::{ZH}', f'constraint_message::{EN}', 'calculation',
                 'repeat_count', 'x-format', 'x-rules', 'x-unique', 'x-min-items', 'x-max-items',
                 f'x-item-label::{ZH}', f'x-item-label::{EN}']


def q(type_, name, zh='', en='', **more):
    row = {'type': type_, 'name': name, f'label::{ZH}': zh, f'label::{EN}': en}
    row.update({key.replace('__', '::').replace('_ZH', f'::{ZH}').replace('_EN', f'::{EN}'): value
                for key, value in more.items()})
    return row


def labour_survey():
    employed = EMPLOYED
    not_employed = f'not({EMPLOYED})'
    rows = [
        q('start', 'start'), q('end', 'end'), q('deviceid', 'deviceid'),
        q('text', 'household_id', '建档立卡户编号', 'Household number', required='yes',
          constraint="regex(., '^\\s*[0-9０-９]{10,20}\\s*$')"),
        q('select_one township', 'township', '乡镇', 'Township', required='yes'),
        q('text', 'village', '村(社区)', 'Village (community)', required='yes',
          constraint='string-length(.) >= 1 and string-length(.) <= 50'),
        q('select_one yes_no', 'relocated', '是否易地扶贫搬迁户', 'Relocated household', required='yes'),
        q('text', 'settlement', '安置点', 'Settlement site', required='yes', relevant="${relocated} = 'true'",
          constraint='string-length(.) >= 1 and string-length(.) <= 50'),
        {**q('begin_repeat', 'members', '劳动力', 'Labourers'), 'x-unique': 'id_number', 'x-min-items': 1,
         'x-max-items': 20, f'x-item-label::{ZH}': '第{n}位劳动力', f'x-item-label::{EN}': 'Labourer {n}'},
        q('text', 'name', '姓名', 'Name', required='yes', constraint='string-length(.) >= 1 and string-length(.) <= 50'),
        {**q('text', 'id_number', '身份证号', 'ID number', required='yes'), 'x-format': 'cn-resident-id',
         f'hint::{ZH}': '18位，须与出生日期、性别一致',
         'x-rules': 'resident-id-birth-date(${birth_date}); resident-id-gender(${gender}, male, female)'},
        q('select_one gender', 'gender', '性别', 'Gender', required='yes'),
        q('date', 'birth_date', '出生日期', 'Date of birth', required='yes'),
        {**q('text', 'phone', '手机号', 'Mobile number'), 'x-format': 'cn-mobile'},
        q('select_one education', 'education', '文化程度', 'Education', required='yes'),
        q('select_one capacity', 'labour_capacity', '劳动能力', 'Labour capacity', required='yes'),
        q('select_one employment', 'employment_status', '就业状态', 'Employment status', required='yes'),
        q('select_one location', 'work_location', '务工地点', 'Place of work', required='yes', relevant=employed),
        q('select_one job_type', 'job_type', '岗位类型', 'Kind of job', required='yes', relevant=employed),
        q('text', 'employer', '工作单位', 'Employer', relevant=employed, constraint='string-length(.) <= 100'),
        q('integer', 'months_worked', '本年务工月数', 'Months worked this year', constraint='. >= 0 and . <= 12'),
        q('decimal', 'monthly_income', '月收入(元)', 'Monthly income (yuan)', required='yes', relevant=employed,
          constraint='. >= 0 and . <= 100000'),
        q('select_one reason', 'unemployed_reason', '未就业原因', 'Reason for not working', required='yes',
          relevant=not_employed),
        q('select_one yes_no', 'willing_to_work', '就业意愿', 'Willing to work', required='yes', relevant=not_employed),
        q('select_multiple trainings', 'trainings_received', '已参加培训', 'Training received'),
        q('select_multiple trainings', 'trainings_wanted', '培训意愿', 'Training wanted'),
        q('select_multiple support', 'support_received', '享受政策', 'Support received'),
        q('end_repeat', ''),
        q('acknowledge', 'consent', '知情同意', 'Informed consent', required='yes'),
    ]
    indicators = [{"id": "employment_rate", "title": "就业率", "x-title-en": "Employment rate",
                   "description": "Employed labourers (stable, flexible or self-employed) over all labourers, in per cent.",
                   "table": "members", "column": "employment_status",
                   "numerator": ["stable", "flexible", "self_employed"]}]
    settings = sheet_rows(['form_id', 'version', 'form_title', 'default_language', 'x-unique', 'x-scope', 'x-indicators'],
                          [{'form_id': 'labour-survey-xls', 'version': '1', 'form_title': '田东县建档立卡贫困劳动力就业情况调查',
                            'default_language': ZH, 'x-unique': 'household_id', 'x-scope': 'township',
                            'x-indicators': json.dumps(indicators, ensure_ascii=False)}])
    return {'survey': sheet_rows(SURVEY_HEADER, rows), 'choices': choices(LABOUR_LISTS), 'settings': settings}


def kitchen_sink():
    lists = {'yes_no': LABOUR_LISTS['yes_no'], 'trainings': TRAININGS,
             'status': LABOUR_LISTS['employment'], 'crop': [('rice', '水稻', 'Rice'), ('sugarcane', '甘蔗', 'Sugarcane'),
                                                           ('mango', '芒果', 'Mango')]}
    rows = [
        q('start', 'start'), q('end', 'end'), q('deviceid', 'deviceid'), q('username', 'username'),
        q('today', 'today'),
        q('note', 'intro', '请如实填写', 'Please answer truthfully'),
        q('text', 'head_name', '户主姓名', 'Head of household', required='yes',
          constraint='string-length(.) >= 2 and string-length(.) <= 20',
          constraint_message_ZH='2到20个字', constraint_message_EN='2 to 20 characters', hint_ZH='身份证上的姓名'),
        q('integer', 'household_size', '家庭人口', 'Household size', required='yes', constraint='. >= 1 and . <= 30'),
        q('integer', 'labourers', '劳动力人数', 'Labourers', constraint='. <= ${household_size}'),
        q('decimal', 'income', '年收入(元)', 'Yearly income', constraint='. >= 0'),
        q('date', 'visit_date', '走访日期', 'Date of visit', required='yes'),
        q('time', 'visit_time', '走访时间', 'Time of visit'),
        q('dateTime', 'appointment', '下次预约', 'Next appointment'),
        q('text', 'phone', '联系电话', 'Phone', constraint="regex(., '^1[0-9]{10}$')"),
        q('select_one yes_no', 'has_land', '是否有耕地', 'Has farmland', required='yes'),
        q('select_multiple crop', 'crops', '种植作物', 'Crops', relevant="${has_land} = 'true'", required='yes',
          constraint="count-selected(.) <= 2"),
        q('decimal', 'land_mu', '耕地面积(亩)', 'Farmland (mu)', relevant="${has_land} = 'true' and selected(${crops}, 'rice')",
          constraint='. > 0 and . < 1000'),
        q('select_one status', 'status', '户主就业状态', 'Head employment status', required='yes'),
        q('text', 'employer', '工作单位', 'Employer', relevant="${status} != 'unemployed' and ${status} != ''"),
        q('text', 'why_not', '未就业原因', 'Why not working', relevant="not(${status} = 'stable' or ${status} = 'flexible')"),
        q('integer', 'children', '子女人数', 'Children'),
        q('text', 'school', '子女就读学校', 'Children\'s school', relevant='${children}'),
        q('begin_group', 'dwelling', '住房', 'Dwelling'),
        q('geopoint', 'location', '住房位置', 'Location of the house'),
        q('image', 'house_photo', '住房照片', 'Photo of the house'),
        q('select_one yes_no', 'is_safe', '住房是否安全', 'House is safe', required='yes'),
        q('text', 'repairs', '需要的维修', 'Repairs needed', relevant="${is_safe} = 'false'", required='yes'),
        q('end_group', ''),
        q('begin_repeat', 'visits', '回访', 'Follow-up visits', repeat_count='2'),
        q('date', 'visit_on', '回访日期', 'Date'),
        q('audio', 'voice_note', '语音备注', 'Voice note'),
        q('text', 'help_asked', '需要的帮扶', 'Help asked for', relevant='${household_size} > 3'),
        q('end_repeat', ''),
        q('begin_repeat', 'members', '成员', 'Members'),
        q('text', 'member_name', '姓名', 'Name', required='yes'),
        q('integer', 'age', '年龄', 'Age', required='yes', constraint='. >= 0 and . <= 120'),
        q('select_multiple trainings', 'trainings', '培训意愿', 'Training wanted', relevant='${age} >= 16 and ${age} <= 60'),
        q('end_repeat', ''),
        q('file', 'certificate', '证明材料', 'Certificate'),
        q('calculate', 'per_head', calculation='${income} div ${household_size}'),
        q('acknowledge', 'confirm', '确认以上信息属实', 'I confirm the above', required='yes'),
    ]
    settings = sheet_rows(['form_id', 'version', 'form_title', 'default_language'],
                          [{'form_id': 'kitchen-sink', 'version': '2026.11', 'form_title': '入户走访（全部题型）',
                            'default_language': ZH}])
    return {'survey': sheet_rows(SURVEY_HEADER, rows), 'choices': choices(lists), 'settings': settings}


def household():
    """A small form in plain `label` columns (one language), for the .xls format."""
    header = ['type', 'name', 'label', 'required', 'relevant', 'constraint']
    rows = [
        {'type': 'text', 'name': 'household_id', 'label': '户编号', 'required': 'yes'},
        {'type': 'integer', 'name': 'size', 'label': '家庭人口', 'required': 'yes', 'constraint': '. >= 1'},
        {'type': 'select_one yes_no', 'name': 'poor', 'label': '是否建档立卡', 'required': 'yes'},
        {'type': 'text', 'name': 'reason', 'label': '致贫原因', 'relevant': "${poor} = 'yes'"},
    ]
    lists = sheet_rows(['list_name', 'name', 'label'],
                       [{'list_name': 'yes_no', 'name': 'yes', 'label': '是'}, {'list_name': 'yes_no', 'name': 'no', 'label': '否'}])
    settings = sheet_rows(['form_id', 'version', 'form_title'], [{'form_id': 'household', 'version': '1', 'form_title': '农户登记'}])
    return {'survey': sheet_rows(header, rows), 'choices': lists, 'settings': settings}


def broken(kind):
    book = household()
    survey = book['survey']
    if kind == 'missing-list':
        survey[3][0] = 'select_one yes_or_no'
    elif kind == 'duplicate-names':
        survey[4][1] = 'household_id'
    elif kind == 'unclosed-group':
        survey.insert(2, ['begin_group', 'details', '详情', '', '', ''])
    return book


def refused():
    """Workbooks this server refuses though pyxform may read them: XLSForm it does not map, and
    files made to exhaust a reader (in refused/, which the pyxform comparison does not read)."""
    folder = HERE / 'refused'
    folder.mkdir(exist_ok=True)
    # A cell at the far corner of the sheet: a reader that allocates the rectangle up to it dies.
    book = household()
    write_xlsx('refused/far-cell.xlsx', book)
    far = openpyxl.load_workbook(folder / 'far-cell.xlsx')
    far['survey']['XFD1048576'] = 'x'
    far.save(folder / 'far-cell.xlsx')
    # Shared strings that claim four billion entries: a reader that reserves them dies.
    write_xlsx('refused/string-count.xlsx', household())
    path = folder / 'string-count.xlsx'
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    shared = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4000000000" '
              b'uniqueCount="4000000000"><si><t>x</t></si></sst>')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename == 'xl/_rels/workbook.xml.rels':
                data = data.replace(b'</Relationships>', b'<Relationship Id="rIdStrings" Type="http://schemas.'
                                    b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
                                    b'Target="sharedStrings.xml"/></Relationships>')
            if info.filename == '[Content_Types].xml':
                data = data.replace(b'</Types>', b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
            target.writestr(info, data)
        target.writestr('xl/sharedStrings.xml', shared)
    # Entities (ODK's case management) are XLSForm this server does not map.
    book = household()
    book['entities'] = [['list_name', 'label'], ['households', '${household_id}']]
    write_xlsx('refused/entities.xlsx', book)


def main():
    refused()
    write_xlsx('labour-survey.xlsx', labour_survey())
    write_xlsx('kitchen-sink.xlsx', kitchen_sink())
    write_xls('household.xls', household())
    for kind in ['missing-list', 'duplicate-names', 'unclosed-group']:
        write_xlsx(f'broken-{kind}.xlsx', broken(kind))


if __name__ == '__main__':
    main()
