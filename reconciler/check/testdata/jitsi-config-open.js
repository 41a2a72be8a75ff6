// Jitsi Meet configuration.
var config = {};

config.hosts = {};
config.hosts.domain = 'meet.jitsi';

var subdir = '<!--# echo var="subdir" default="" -->';
var subdomain = '<!--# echo var="subdomain" default="" -->';
if (subdir.startsWith('<!--')) {
    subdir = '';
}
if (subdomain) {
    subdomain = subdomain.substring(0,subdomain.length-1).split('.').join('_').toLowerCase() + '.';
}
config.hosts.muc = 'muc.' + subdomain + 'meet.jitsi';


config.bosh = 'https://meet.wp.example.org/' + subdir + 'http-bind';
config.websocket = 'wss://meet.wp.example.org/' + subdir + 'xmpp-websocket';
